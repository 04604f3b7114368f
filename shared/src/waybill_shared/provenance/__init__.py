"""The provenance graph: histories, datasets (HDA), collections (HDCA, DCE), jobs and
mapped runs. Recording is shared by the gateway (HTTP) and the tracker (provenance
events from other systems), so both apply the same validation and ownership checks."""
