"""What a client and a store share: region descriptors, the route cache,
size limits, replica-change goals and the client frames. It imports neither
the Raft core nor the storage engine, so the client loads neither."""
