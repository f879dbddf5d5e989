"""The stream processor: faust app and agent, pipeline steps, dead letters, topics."""
