"""Public message contracts: one versioned pydantic model per message
(`contracts.messages`), and the field types they share with the HTTP contract
(`contracts.types`).

Other systems publish and consume these over AMQP (see docs/asyncapi.yaml). A model
is JSON in the body; its `message_type()` goes in the AMQP `type` property.
(Nothing is re-exported here: messages.py imports the provenance schemas, which
import contracts.types, so importing messages from this package's __init__ made
`import waybill_shared.provenance.schemas` fail on its own.)
"""
