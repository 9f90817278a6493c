"""Who may do what: one home for the decision, above the domains.

- `principal`: the caller (a user or an API key), its organization, mode and effective scopes;
- `authenticate`: resolving that caller from `Authorization: Bearer <JWT | API key>`;
- `requirements`: what a route needs, declared once where the route is (exactly one per route,
  checked by a test over the OpenAPI document), run before anything else of the route, replays of
  an `Idempotency-Key` included.

The layering: `access` imports `core` and the identity *models and repositories* (users,
organizations and memberships, API keys) and nothing else; every domain's endpoints import
`access`, and no identity model or repository imports it back.
"""
