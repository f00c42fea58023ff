"""Which sandbox tier a test runs student code in, on this machine or under tests/dockerlike.py.

    @pytest.fixture(params=TIERS)
    def tier(request, monkeypatch):
        return use_tier(request.param, monkeypatch)

A tier this machine cannot give is skipped, unless ``KIT_REQUIRE_TIERS`` names it: then the
test fails (CI sets it, so a CI machine without bubblewrap or Landlock never passes quietly).
"""

from __future__ import annotations

import os

import pytest

from grader.sandbox.tiers import DISABLE_ENV, Tier, detect

REQUIRE_ENV = "KIT_REQUIRE_TIERS"
# name -> the pieces left out to get it on a machine that has more
ALL_TIERS = {"bubblewrap": "", "container": "namespaces"}
# Which tiers the tier-parametrized tests run in (default: all): `make test` runs bubblewrap
# here and the container tier inside the Docker-like harness (tests/test_container.py).
TIERS = {name: off for name, off in ALL_TIERS.items()
         if name in os.environ.get("KIT_TEST_TIERS", ",".join(ALL_TIERS)).split(",")}


def expected(name: str, tier: Tier) -> bool:
    if name == "bubblewrap":
        return tier.namespaces
    wanted = {"landlock", "seccomp"} | ({"uid"} if os.getuid() == 0 else set())
    return not tier.namespaces and wanted <= set(tier.pieces)


def use_tier(name: str, monkeypatch: pytest.MonkeyPatch) -> Tier:
    monkeypatch.setenv(DISABLE_ENV, TIERS[name])
    tier = detect()
    if not expected(name, tier):
        why = f"the {name} tier is not available here: {tier.describe()} {tier.gaps()}"
        if name in os.environ.get(REQUIRE_ENV, "").split(","):
            pytest.fail(why)
        pytest.skip(why)
    return tier
