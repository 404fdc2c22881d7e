"""The build's module walk (pure parts): which modules the verify must prove, and what its note says."""

from __future__ import annotations

import dataclasses

from lambda_ml_layers.build.module_walk import ModuleWalk, walk_candidates
from lambda_ml_layers.config.project import load_project
from tests.project_factory import REPO


def test_the_walk_leaves_out_what_strip_rules_remove_and_the_exempt_modules() -> None:
    layer = load_project(REPO).layer("ml-libraries")  # the real strip rules and allowed failures
    files = [
        "sklearn/__init__.py",
        "sklearn/svm/_classes.py",
        "sklearn/tests/test_base.py",  # the `tests` rule removes it
        "sklearn/utils/estimator_checks.py",  # [layer_tests] allowed_import_failures
        "sklearn/naive_bayes.py",
        "sklearn/data/iris.csv",  # no module
    ]
    assert walk_candidates(files, layer) == ["sklearn", "sklearn.naive_bayes", "sklearn.svm._classes"]
    skipping = dataclasses.replace(layer, skip_imports=("sklearn.svm",))
    assert walk_candidates(files, skipping) == ["sklearn", "sklearn.naive_bayes"]


def test_the_note_counts_what_cannot_be_proven_and_pruned_modules_are_not_imported() -> None:
    walk = ModuleWalk(("a", "a.b", "a.c.d"), {"a.win": "ModuleNotFoundError: No module named 'msvcrt'"}, 3.4)
    assert walk.without(("a.c",)) == ["a", "a.b"]
    assert walk.note() == (
        "module walk: 3 modules imported from the plain install in 3 s, each then imported from the zip; 1 fail "
        "even from the plain install (optional dependencies the lock lacks), so nothing can prove them: a.win "
        "(ModuleNotFoundError: No module named 'msvcrt')"
    )
