"""The gxformat2 form of a `.ga` document (pure). Made when a workflow is extracted
and stored beside the `.ga`: at 10,000 steps it takes about as long as the
extraction itself, work for this service rather than for the gateway's downloads."""

from __future__ import annotations

import json
from typing import Any

import yaml
from gxformat2.export import from_galaxy_native


def format2_yaml(document: dict[str, Any]) -> bytes:
    # gxformat2 answers OrderedDicts; a JSON round trip makes plain values.
    format2 = json.loads(json.dumps(from_galaxy_native(document, json_wrapper=False)))
    # libyaml's emitter: the pure-Python one took 3.4 s for 10,000 steps.
    dumped: str = yaml.dump(format2, Dumper=yaml.CSafeDumper, sort_keys=False)
    return dumped.encode()
