import type { HttpClient } from "../http.js";
import type { Agent, JsonObject } from "../types.js";
import { camelize } from "../wire.js";

export interface AgentConfig extends Agent {
  inputSchema: JsonObject;
  configSchema: JsonObject;
  maxFiles: number;
  timeLimitSeconds: number;
}

export class Agents {
  constructor(private readonly http: HttpClient) {}

  async list(): Promise<Agent[]> {
    return (await this.http.json<JsonObject[]>("GET", "/agents")).map((agent) => camelize<Agent>(agent));
  }

  /** The agent with the JSON schemas of its input and config. */
  async getConfig(agentId: string): Promise<AgentConfig> {
    return camelize<AgentConfig>(
      await this.http.json<JsonObject>("GET", `/agents/${encodeURIComponent(agentId)}/config`),
    );
  }
}
