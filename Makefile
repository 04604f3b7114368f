.PHONY: run stop test lint bench asyncapi openapi definitions

run:  ## install what is missing, start the stack, print the gateway URL and admin key
	bash scripts/run.sh

stop:
	bash scripts/stop.sh

test:  ## install what is missing and run every test against real servers
	bash scripts/test.sh

lint:
	uv run ruff check . && uv run ruff format --check . && uv run mypy

asyncapi:
	uv run python scripts/asyncapi.py > docs/asyncapi.yaml

openapi:
	uv run python scripts/openapi.py > docs/openapi.json

definitions:  ## RabbitMQ's definitions for compose and the dev cluster (development passwords)
	env -i PATH="$$PATH" HOME="$$HOME" uv run python -m waybill_shared.messaging.definitions \
		--administrator waybill-admin > deploy/overlays/dev/rabbitmq/definitions.json
