"""The stream processor, in three layers (README, "Layout").

Domain: entities, repository (the protocols it asks state through), intake,
periods, buckets, aggregate, processor. State: cells, items, schedule,
state, store, changelog, progress, heap. Runtime: app, batching, pipeline,
outputs, gaps, tablestore (Faust and Kafka). A module imports only from its
own layer and below.
"""
