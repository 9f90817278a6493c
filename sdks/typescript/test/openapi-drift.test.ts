/**
 * One source of truth: the fields the SDK models (src/fields.ts, which its types are checked against
 * when it compiles) must be the fields of the same schemas in the service's OpenAPI document, with the
 * same wire types. A service change to a modelled field fails here until the SDK changes too.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import { JOB_STATUSES, MODELLED_SCHEMAS } from "@coexai/sdk";

import { BASE_URL } from "./support.js";

interface Schema {
  type?: string;
  $ref?: string;
  anyOf?: Schema[];
  enum?: string[];
  properties?: Record<string, Schema>;
}

/** `string`, `integer|null`, `JobStatus`: how fields.ts writes a field's wire type. */
function wireType(schema: Schema): string {
  if (schema.$ref) return schema.$ref.split("/").at(-1)!;
  if (schema.anyOf) return schema.anyOf.map(wireType).join("|");
  return schema.type ?? "any";
}

test("the SDK's modelled fields are the OpenAPI document's", async () => {
  const document = (await (await fetch(`${new URL(BASE_URL).origin}/openapi.json`)).json()) as {
    components: { schemas: Record<string, Schema> };
  };
  const schemas = document.components.schemas;
  for (const [name, fields] of Object.entries(MODELLED_SCHEMAS)) {
    const schema = schemas[name];
    assert.ok(schema?.properties, `the OpenAPI document has no schema ${name}`);
    const served = Object.fromEntries(Object.entries(schema.properties).map(([field, s]) => [field, wireType(s)]));
    assert.deepEqual(
      served,
      { ...fields },
      `${name} differs from the SDK's model (sdks/typescript/src/fields.ts and types.ts): update both`,
    );
  }
  assert.deepEqual(schemas.JobStatus?.enum, [...JOB_STATUSES], "JobStatus values differ from the SDK's");
});
