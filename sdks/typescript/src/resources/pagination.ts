import type { HttpClient } from "../http.js";
import type { JsonObject } from "../types.js";

export interface Page<T> {
  data: T[];
  hasMore: boolean;
  nextCursor: string | null;
}

type Query = Record<string, string | number | boolean | undefined | null>;

/** Cursor pagination (`{data, has_more, next_cursor}`) as an async iterable over every item. */
export function paginate<T>(
  http: HttpClient,
  path: string,
  query: Query,
  convert: (item: JsonObject) => T,
): AsyncIterable<T> & { firstPage(): Promise<Page<T>> } {
  const page = async (cursor: string | null): Promise<Page<T>> => {
    const answer = await http.json<{ data: JsonObject[]; has_more: boolean; next_cursor: string | null }>(
      "GET",
      path,
      { query: { ...query, cursor } },
    );
    return { data: answer.data.map(convert), hasMore: answer.has_more, nextCursor: answer.next_cursor };
  };
  return {
    firstPage: () => page(null),
    async *[Symbol.asyncIterator]() {
      let cursor: string | null = null;
      do {
        const current: Page<T> = await page(cursor);
        yield* current.data;
        cursor = current.hasMore ? current.nextCursor : null;
      } while (cursor !== null);
    },
  };
}
