"""The simulated sales floor behind ``salespulse simulate`` and ``salespulse demo``.

The model lives in :mod:`salespulse.simulate.floor` and needs nothing but the
settings; putting its events on a broker is :mod:`salespulse.simulate.publisher`,
imported on its own so that tests and tools using the model do not load the
Kafka client.
"""

from salespulse.simulate.floor import SEED_PROFILES, Profile, SalesFloor, SimManager, topic_for

__all__ = ["SEED_PROFILES", "Profile", "SalesFloor", "SimManager", "topic_for"]
