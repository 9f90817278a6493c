"""`backplane staff grant|revoke EMAIL` and `backplane licenses issue`, as an operator runs them."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from backplane.core.config import Settings
from tests.fixtures.processes import run_cli


def backplane(settings: Settings, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ENVIRONMENT": "test",
        "DATABASE_URL": settings.database.url,
        "SECRET_KEY": settings.secret_key,
        "SECRETS_DIR": str(tmp_path / "secrets"),
    }
    return run_cli(*args, env=env, cwd=tmp_path)


async def test_staff_grant_and_revoke_mark_an_existing_user(api, client, settings, tmp_path):
    operator = await api.register("ops@example.com")
    granted = backplane(settings, tmp_path, "staff", "grant", "OPS@example.com")
    assert (granted.returncode, granted.stdout.strip()) == (0, "ops@example.com is now staff"), granted.stderr
    me = await client.get("/v1/users/me", headers=operator.headers)
    assert me.json()["user"]["is_staff"] is True
    actions = await client.get("/v1/staff/actions", headers=operator.headers)
    assert [(a["actor"].startswith("cli:"), a["action"]) for a in actions.json()["data"]] == [(True, "staff.grant")]

    revoked = backplane(settings, tmp_path, "staff", "revoke", "ops@example.com")
    assert (revoked.returncode, revoked.stdout.strip()) == (0, "ops@example.com is no longer staff")
    assert (await client.get("/v1/staff/actions", headers=operator.headers)).status_code == 403


def test_staff_grant_of_an_unknown_email_fails_clearly(settings, tmp_path):
    result = backplane(settings, tmp_path, "staff", "grant", "nobody@example.com")
    assert result.returncode == 1
    assert result.stderr.strip() == "backplane: no user has the email address 'nobody@example.com'"


async def test_licenses_issue_prints_the_license_as_the_api_shows_it(api, client, settings, tmp_path):
    customer = await api.register()
    result = backplane(
        settings,
        tmp_path,
        "licenses",
        "issue",
        "--organization",
        customer.organization_id,
        "--tier",
        "enterprise",
        "--seats",
        "25",
        "--expires",
        "2031-01-01T00:00:00Z",
    )
    assert result.returncode == 0, result.stderr
    issued = json.loads(result.stdout)
    shown = await client.get(f"/api/v1/licenses/{issued['id']}/", headers=customer.headers)
    assert shown.status_code == 200, shown.text
    assert {k: v for k, v in shown.json().items() if k != "updated_at"} == {
        k: v for k, v in issued.items() if k != "updated_at"
    }
    assert (issued["tier"], issued["seats"], issued["livemode"]) == ("enterprise", 25, True)
    assert issued["expiry_date"].startswith("2031-01-01T00:00:00")


async def test_licenses_issue_test_mode_and_bad_input(api, settings, tmp_path):
    customer = await api.register()
    test = backplane(
        settings, tmp_path, "licenses", "issue", "--organization", customer.organization_id, "--tier", "pro",
        "--seats", "2", "--test",
    )  # fmt: skip
    assert test.returncode == 0, test.stderr
    assert json.loads(test.stdout)["livemode"] is False

    unknown = backplane(
        settings, tmp_path, "licenses", "issue", "--organization", "00000000-0000-0000-0000-000000000000",
        "--tier", "pro", "--seats", "2",
    )  # fmt: skip
    assert (unknown.returncode, unknown.stderr.strip()) == (
        1,
        "backplane: no organization has the id 00000000-0000-0000-0000-000000000000",
    )
    naive = backplane(
        settings, tmp_path, "licenses", "issue", "--organization", customer.organization_id, "--tier", "pro",
        "--seats", "2", "--expires", "2031-01-01T00:00:00",
    )  # fmt: skip
    assert naive.returncode == 2
    assert "give a time zone" in naive.stderr
    past = backplane(
        settings, tmp_path, "licenses", "issue", "--organization", customer.organization_id, "--tier", "pro",
        "--seats", "2", "--expires", "2020-01-01T00:00:00Z",
    )  # fmt: skip
    assert (past.returncode, past.stderr.strip()) == (1, "backplane: expiry_date: Must be in the future.")
    zero = backplane(
        settings, tmp_path, "licenses", "issue", "--organization", customer.organization_id, "--tier", "pro",
        "--seats", "0",
    )  # fmt: skip
    assert zero.returncode == 1
    assert zero.stderr.startswith("backplane: seats: Input should be greater than or equal to 1")
