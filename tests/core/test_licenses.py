"""Licenses read from wheels made here with chosen metadata, and judged against a policy."""

from __future__ import annotations

import pytest

from devpi_airgap.core.licenses import ALLOWED, DENIED, EXCEPTED, REVIEW, blocking, judge, read_license
from devpi_airgap.core.policy import LicenseException, LicensePolicy
from testing.wheels import make_wheel

POLICY = LicensePolicy(
    allow=frozenset({"MIT", "Apache-2.0", "BSD-3-Clause"}),
    deny=frozenset({"AGPL-3.0-only"}),
    exceptions=(LicenseException("special", "approved by legal, ticket 42"),),
)


@pytest.mark.parametrize(
    "headers, expression, source",
    [
        # License-Expression wins over everything else, even a contradicting classifier.
        (
            [
                ("License-Expression", "mit OR Apache-2.0"),
                ("Classifier", "License :: OSI Approved :: GNU Affero General Public License v3"),
            ],
            "MIT OR Apache-2.0",
            "License-Expression",
        ),
        (
            [("License", "Apache 2.0"), ("Classifier", "License :: OSI Approved :: MIT License")],
            "Apache-2.0",
            "License",
        ),
        # A License field holding the license's text falls through to the classifiers.
        (
            [
                (
                    "License",
                    "Copyright (c) 2020 Someone\n        Permission is hereby granted, free of charge, " + "x" * 300,
                ),
                ("Classifier", "License :: OSI Approved :: MIT License"),
            ],
            "MIT",
            "classifiers",
        ),
        (
            [
                ("Classifier", "License :: OSI Approved :: MIT License"),
                ("Classifier", "License :: OSI Approved :: Apache Software License"),
            ],
            "MIT OR Apache-2.0",
            "classifiers",
        ),
        ([("Classifier", "License :: OSI Approved :: BSD License")], None, "none"),  # a family, not a license
        ([], None, "none"),
    ],
)
def test_the_license_is_read_in_the_metadatas_own_order(tmp_path, headers, expression, source):
    info = read_license(make_wheel(tmp_path, "pkg", "1.0", headers=headers))
    assert (info.expression, info.source) == (expression, source)


@pytest.mark.parametrize(
    "expression, verdict",
    [
        ("MIT", ALLOWED),
        ("AGPL-3.0-only", DENIED),
        ("MIT OR AGPL-3.0-only", ALLOWED),  # the user may take the allowed branch
        ("MIT AND AGPL-3.0-only", DENIED),  # both apply at once
        ("GPL-2.0-only", REVIEW),
        ("MIT AND GPL-2.0-only", REVIEW),
    ],
)
def test_expressions_are_judged_as_spdx_means_them(tmp_path, expression, verdict):
    wheel = make_wheel(tmp_path, "pkg", "1.0", headers=[("License-Expression", expression)])
    assert judge(wheel, POLICY).verdict == verdict


def test_an_exception_accepts_a_project_with_its_reason_and_unknown_blocks_only_when_asked(tmp_path):
    special = judge(make_wheel(tmp_path, "special", "1.0", headers=[("License-Expression", "AGPL-3.0-only")]), POLICY)
    assert (special.verdict, special.reason) == (EXCEPTED, "approved by legal, ticket 42")
    unknown = judge(make_wheel(tmp_path, "odd", "1.0", headers=[("License", "see LICENSE.txt")]), POLICY)
    assert (unknown.verdict, unknown.reason, unknown.license.raw) == (
        REVIEW,
        "no SPDX license could be read",
        "see LICENSE.txt",
    )
    assert blocking([unknown], POLICY) == []
    strict = LicensePolicy(allow=POLICY.allow, unknown="block")
    assert blocking(
        [judge(make_wheel(tmp_path, "odd", "1.0", headers=[("License", "see LICENSE.txt")]), strict)], strict
    )


def test_the_license_cache_answers_for_an_unchanged_wheel_and_reads_a_rewritten_one_again(tmp_path):
    from devpi_airgap.core.licenses import LicenseCache

    wheel = make_wheel(tmp_path / "w", "pkg", "1.0", headers=[("License-Expression", "MIT")])
    cache = LicenseCache(tmp_path / "licenses.json")
    assert cache.get(wheel).expression == "MIT"
    cache.save()
    again = LicenseCache(tmp_path / "licenses.json")
    assert again.entries and again.get(wheel).expression == "MIT"
    make_wheel(tmp_path / "w", "pkg", "1.0", headers=[("License-Expression", "AGPL-3.0-only")])  # same name, new bytes
    assert again.get(wheel).expression == "AGPL-3.0-only"
