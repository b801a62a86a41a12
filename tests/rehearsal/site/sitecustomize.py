"""Rehearsal only (on PYTHONPATH in `make rehearsal`, never installed): the fixture archives'
checksums stand in for the published ones, read from $COURSE_REHEARSAL_CHECKSUMS.

Every Python process of the rehearsal (pytest and each notebook's kernel) imports this at start;
it wraps `course_utils.download.verify` once that module is loaded. Without the variable it does
nothing, and nothing in course_utils itself can override a published checksum.
"""

import dataclasses
import importlib.abc
import importlib.machinery
import json
import os
import sys

TABLE = os.environ.get("COURSE_REHEARSAL_CHECKSUMS")


class _SubstituteChecksums(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):  # noqa: ANN001, ANN201 (the importlib protocol)
        if name != "course_utils.download":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        run_module = spec.loader.exec_module

        def exec_module(module) -> None:  # noqa: ANN001
            run_module(module)
            published = module.verify

            def verify(path, remote):  # noqa: ANN001, ANN202
                with open(TABLE) as f:
                    fixture = json.load(f).get(remote.name)
                return published(
                    path, dataclasses.replace(remote, **fixture) if fixture else remote
                )

            module.verify = verify

        spec.loader.exec_module = exec_module
        return spec


if TABLE:
    sys.meta_path.insert(0, _SubstituteChecksums())
