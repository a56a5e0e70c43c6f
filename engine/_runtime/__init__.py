"""The workflow runtime (the SDK's side): a deterministic event loop driven by history, and what workflow code calls."""
