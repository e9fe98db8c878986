"""``gridwarden eval``: measure detection quality on recorded scenarios with written ground truth.

* :mod:`.truth` - the scenario file (clip, edge configuration, expected incidents per zone);
* :mod:`.scoring` - matching the incidents a replay raised to the expected ones;
* :mod:`.runner` - replaying every scenario of a folder through the edge pipeline;
* :mod:`.report` - the table for people and the JSON for machines;
* :mod:`.cli` - the command.
"""
