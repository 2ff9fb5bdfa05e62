"""No models of its own: ops only observes. The counters and heartbeats it reads are messaging's
(portal.messaging.models: MessageCount, Heartbeat), written beside the messages they count."""
