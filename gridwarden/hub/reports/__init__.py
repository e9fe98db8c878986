"""Cases that do not come from a camera, and the city's view of all cases.

* :mod:`.categories`: the city's urban-management event codes (数字城管) every case carries.
* :mod:`.points`: QR points posted at patrol points, imported from CSV/GeoJSON.
* :mod:`.resident`: a resident's report at a point becomes (or joins) a case.
* :mod:`.rate_limit`: per-address and per-point limits for the public report page.
* :mod:`.open311`: the case queue as GeoReport v2 service requests.
"""
