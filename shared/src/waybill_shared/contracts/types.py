"""Field types shared by message and HTTP contracts."""

from typing import Annotated

from pydantic import Field

# A database id: Postgres integer columns hold up to 2**31 - 1.
DbId = Annotated[int, Field(ge=1, le=2**31 - 1)]
