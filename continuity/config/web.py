"""Settings of the HTTP listener serving webmail and the admin API (the ``[web]`` table)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from continuity.config.types import HostPort, ListenAddress, parse_host_port


class WebSettings(BaseModel):
    """Where the web interface listens."""

    model_config = ConfigDict(extra="forbid")

    listen: ListenAddress = Field(
        default="127.0.0.1:8080",
        description="Address and port of the HTTP listener (webmail, admin API, health).",
    )

    @property
    def listen_address(self) -> HostPort:
        """The parsed listen address."""
        return parse_host_port(self.listen)
