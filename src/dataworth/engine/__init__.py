"""The round loop that turns sampled work into mergeable statistics."""
