"""Webhooks: users subscribe to their tasks' events; deliveries are rows inserted in
the transaction that records each event, and the tracker sends them (Standard
Webhooks headers, retried with backoff). Pure parts here (which events, which URLs,
when to retry, secrets); the statements in `repository`; sending in the tracker."""
