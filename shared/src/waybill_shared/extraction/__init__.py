"""Workflow extraction as a library, imported by the gateway (to check a request
before accepting it) and by the extraction service (to check it again and build):

- `domain/`: pure; a provenance graph and a selection in, a `.ga` document out.
- `repository`: loading the part of the graph a request needs (batched queries).
- `requests`: the access and extraction-rule checks of a request, on that graph.
- `documents`: where an extracted workflow's documents are stored.

No broker or storage code, and no gxformat2: the extraction service alone makes
the gxformat2 form."""
