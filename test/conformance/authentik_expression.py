"""Runs one Authentik expression policy the way Authentik runs it, for the blueprint tests.

Authentik compiles a policy's expression into `def handler(<context names>): <expression>`
and execs it with its helper functions as globals (goauthentik/authentik
authentik/lib/expression/evaluator.py BaseEvaluator.wrap_expression, .evaluate, the
`_globals` table: `requests` is an HTTP session). A policy sees `request` (the PolicyRequest),
`context` (request.context: the flow plan's context, e.g. pending_user, source,
"goauthentik.io/sources/connection", oauth_userinfo) and `ak_message`; a truthy result passes,
anything else fails, and an exception fails the policy with its text as the message
(authentik/policies/expression/evaluator.py PolicyEvaluator.evaluate / handle_error).

stdin: {"expression": str, "context": {...}, "github": {"token": str, "memberships": {org: state}}}
where a context value {"__object__": {...}} becomes an object with those attributes.
stdout: {"passing": bool, "raised": bool, "messages": [str], "requests": [{"url", "accept", "bearer_ok"}]}
("raised": the expression threw, which Authentik turns into PolicyException: the binding's
failure_result then decides, authentik/policies/process.py).

`requests.get` answers as GitHub's REST API does for the one call a policy here makes,
GET https://api.github.com/user/memberships/orgs/{org} (github/rest-api-description,
operation orgs/get-membership-for-authenticated-user): 200 with the membership
({"state": "active"|"pending", "role", "organization": {"login"}}) when the token's user is
a member or invited, 404 {"message": "Not Found"} when not, 401 {"message": "Bad
credentials"} for another token. Every other URL is refused: the policy may call nothing else.
"""

import json
import re
import sys
from textwrap import indent
from types import SimpleNamespace


def sanitize_arg(name):
    # authentik/lib/expression/evaluator.py sanitize_arg: slugify, then [:.-] -> _
    slug = re.sub(r"[^\w\s-]", "", name.lower()).strip()
    slug = re.sub(r"[-\s]+", "-", slug)
    return re.sub(r"[:.-]", "_", slug)


class Response:
    def __init__(self, status_code, body):
        self.status_code = status_code
        self._body = body

    def json(self):
        return self._body

    def raise_for_status(self):
        if self.status_code >= 400:
            raise RuntimeError(f"{self.status_code} Client Error for url")


class GitHub:
    def __init__(self, spec):
        self.token = spec.get("token")
        self.memberships = spec.get("memberships", {})
        self.calls = []

    def get(self, url, headers=None, timeout=None, **_kwargs):
        headers = {k.lower(): v for k, v in (headers or {}).items()}
        bearer_ok = headers.get("authorization") == f"Bearer {self.token}"
        self.calls.append({"url": url, "accept": headers.get("accept"), "bearer_ok": bearer_ok, "timeout": timeout})
        match = re.fullmatch(r"https://api\.github\.com/user/memberships/orgs/([A-Za-z0-9-]+)", url)
        if not match:
            raise RuntimeError(f"unexpected request to {url}")
        if not bearer_ok:
            return Response(401, {"message": "Bad credentials"})
        state = self.memberships.get(match.group(1).lower())
        if state is None:
            return Response(404, {"message": "Not Found"})
        return Response(200, {"state": state, "role": "member", "organization": {"login": match.group(1)}})


def objects(value):
    if isinstance(value, dict):
        if set(value) == {"__object__"}:
            return SimpleNamespace(**{k: objects(v) for k, v in value["__object__"].items()})
        return {k: objects(v) for k, v in value.items()}
    if isinstance(value, list):
        return [objects(v) for v in value]
    return value


def main():
    spec = json.load(sys.stdin)
    github = GitHub(spec.get("github", {}))
    messages = []
    plan_context = objects(spec.get("context", {}))
    request = SimpleNamespace(context=plan_context, user=plan_context.get("pending_user"))
    context = {
        "ak_message": messages.append,
        # authentik/policies/expression/evaluator.py: request.context.get(PLAN_CONTEXT_SSO, False),
        # PLAN_CONTEXT_SSO = "is_sso" (authentik/flows/planner.py; 2026.5.0-rc1 addbf5a2f), which
        # the source flow manager sets for a flow a source started.
        "ak_is_sso_flow": plan_context.get("is_sso", False),
        "request": request,
        "context": plan_context,
    }
    names = ",".join(sanitize_arg(k) for k in context)
    source = f"def handler({names}):\n" + indent(spec["expression"], "    ") + f"\nresult = handler({names})"
    scope = {sanitize_arg(k): v for k, v in context.items()}
    raised = False
    try:
        exec(compile(source, "expression", "exec"), {"requests": github}, scope)  # noqa: S102
        result = scope["result"]
        passing = bool(result) if result is not None else False
    except Exception as exc:  # noqa: BLE001 - a failing policy, as Authentik records it
        passing = False
        raised = True
        messages.append(str(exc))
    json.dump({"passing": passing, "raised": raised, "messages": messages, "requests": github.calls}, sys.stdout)


main()
