"""Gradio's per-session state, made from the config the server already holds.

Gradio makes a ``SessionState`` for every page load and for every API call made without a session (each
plain-HTTP ``/call/...`` gets one of its own), on the event loop, right before the event runs. Its
``__init__`` asks every block for its config again (``BlocksConfig.config_for_block``, ~0.1 ms a block:
13-20 ms for this app's 111 blocks on AMD EPYC cores, and 182 KB), although the server computed the same
configs at launch (``Blocks.config``, what every page is served from). :class:`LeanSessionState` copies those
instead: 0.12 ms and 85 KB a session, the same values in the same order (a test compares them with Gradio's).
The per-block configs are shallow copies: Gradio writes a session's values into its own ``props`` dict
(``_update_value_in_config``) and replaces a block's config whole (``__setitem__``), never deeper.
"""

from __future__ import annotations

from typing import Any

from gradio import state_holder

_GradioSessionState = state_holder.SessionState


class _NoBlocks:
    """A ``Blocks`` as ``SessionState.__init__`` sees it, with no blocks to make configs for (anything else it
    reads, now or in a later Gradio, is the real one's)."""

    def __init__(self, blocks: Any) -> None:
        self._blocks = blocks
        self.blocks: dict[int, Any] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._blocks, name)


class LeanSessionState(_GradioSessionState):
    """``gradio.state_holder.SessionState`` whose per-block configs are copied from the launch config."""

    def __init__(self, blocks: Any) -> None:
        super().__init__(_NoBlocks(blocks))  # everything but the configs, as Gradio sets it up
        launched = {c["id"]: c for c in (getattr(blocks, "config", None) or {}).get("components", [])}
        configs = {}
        for key, block in self.blocks_config.blocks.items():
            if key not in blocks.blocks:
                continue
            config = launched.get(key)
            if config is None or "props" not in config:  # not launched yet, or added since: Gradio's way
                configs[key] = self.blocks_config.config_for_block(key, [], block)
            else:
                configs[key] = {**config, "props": dict(config["props"])}
        self.config_values = configs


def install() -> None:
    """Make Gradio's state holders build :class:`LeanSessionState` (every ``Blocks`` in this process: the
    values are Gradio's own). Idempotent."""
    state_holder.SessionState = LeanSessionState
