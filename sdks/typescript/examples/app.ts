/**
 * The `app` the guide's snippet mounts its webhook route on. The guide's readers use Express
 * (`const app = express()`); the SDK has no dependencies, not even for its examples, so this is the
 * smallest Express-compatible stand-in: `app.post(path, middleware)` over `node:http`, listening on
 * `PORT`. With Express installed, `express()` replaces it unchanged.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";

type Middleware = (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => unknown;

const routes = new Map<string, Middleware>();

export const app = {
  post(path: string, middleware: Middleware): void {
    routes.set(`POST ${path}`, middleware);
  },
};

export const server = createServer((req, res) => {
  const route = routes.get(`${req.method} ${(req.url ?? "/").split("?")[0]}`);
  if (!route) {
    res.writeHead(404).end();
    return;
  }
  void route(req, res, (error) => {
    res.writeHead(500).end(String(error));
  });
});
server.listen(Number(process.env.PORT ?? 3000), "127.0.0.1");
