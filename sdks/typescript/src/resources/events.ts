import type { HttpClient } from "../http.js";
import type { Event, JsonObject } from "../types.js";
import { camelize, toIso } from "../wire.js";
import { paginate, type Page } from "./pagination.js";

export interface EventListParams {
  type?: string;
  createdAfter?: string | Date;
  createdBefore?: string | Date;
  /** `false`: only events some webhook never received. */
  deliverySuccess?: boolean;
  limit?: number;
}

export class Events {
  constructor(private readonly http: HttpClient) {}

  list(params: EventListParams = {}): AsyncIterable<Event> & { firstPage(): Promise<Page<Event>> } {
    const query = {
      type: params.type,
      created_after: toIso(params.createdAfter),
      created_before: toIso(params.createdBefore),
      delivery_success: params.deliverySuccess,
      limit: params.limit,
    };
    return paginate(this.http, "/events", query, (event) => camelize<Event>(event));
  }

  async get(eventId: string): Promise<Event> {
    return camelize<Event>(await this.http.json<JsonObject>("GET", `/events/${encodeURIComponent(eventId)}`));
  }
}
