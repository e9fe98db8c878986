"""Dispatch: from a confirmed case to the nearest on-duty officer, and back to a closed case.

:mod:`.estimator` says how long an officer needs to get there; :mod:`.service` runs the queue
(offers, timeouts, escalation, verification by camera); :mod:`.figures` reports the SLA.
"""
