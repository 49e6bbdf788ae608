"""Prometheus exposition of salespulse's state (the exposition layer).

Reads the state (streams.state), never changes it, and knows nothing of
Faust: the runtime (salespulse.worker) serves it.
"""
