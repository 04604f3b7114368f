"""AMQP: the topology (one place), publishing with confirms, and consuming with
manual ack and dead-lettering with a reason."""
