"""The gateway's queries, one module for each module of `services/` that needs any: the
services keep the rules (who may see what, what a request means, what an answer looks
like), the repository the statements. Loading or adding one ORM row by its key
(`session.get`, `session.add`) stays with the service that works on it; the statements
every job crosses are in waybill_shared.tasks.repository, shared with the workers."""
