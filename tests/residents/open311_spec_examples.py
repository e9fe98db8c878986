"""The response examples published with the GeoReport v2 specification
(http://wiki.open311.org/GeoReport_v2), trimmed to one record each. Tests compare the hub's
documents with these: the same field names, in the same order, under the same XML elements."""

SERVICES_JSON = """[{"service_code":"001","service_name":"Cans left out 24x7",
"description":"Garbage or recycling cans that have been left out for more than 24 hours after collection.",
"metadata":false,"type":"realtime","keywords":"lorem, ipsum, dolor","group":"sanitation"}]"""

SERVICES_XML = """<?xml version="1.0" encoding="utf-8"?>
<services><service><service_code>001</service_code><service_name>Cans left out 24x7</service_name>
<description>Garbage or recycling cans that have been left out.</description><metadata>true</metadata>
<type>realtime</type><keywords>lorem, ipsum, dolor</keywords><group>sanitation</group></service></services>"""

DEFINITION_JSON = """{"service_code":"DMV66","attributes":[{"variable":true,"code":"WHISHETN",
"datatype":"singlevaluelist","required":true,"datatype_description":null,"order":1,
"description":"What is the ticket/tag/DL number?","values":[{"key":123,"name":"Ford"}]}]}"""

DEFINITION_XML = """<?xml version="1.0" encoding="utf-8"?>
<service_definition><service_code>DMV66</service_code><attributes><attribute><variable>true</variable>
<code>WHISHETN</code><datatype>singlevaluelist</datatype><required>true</required>
<datatype_description></datatype_description><order>1</order>
<description>What is the ticket/tag/DL number?</description><values><value><key>123</key>
<name>Ford</name></value></values></attribute></attributes></service_definition>"""

POST_JSON = """[{"service_request_id":293944,"service_notice":"The City will inspect and require the responsible party to correct within 24 hours.","account_id":null}]"""

POST_XML = """<?xml version="1.0" encoding="utf-8"?>
<service_requests><request><service_request_id>293944</service_request_id>
<service_notice>The City will inspect within 24 hours.</service_notice><account_id/></request></service_requests>"""

TOKEN_JSON = """[{"service_request_id":638344,"token":12345}]"""

TOKEN_XML = """<?xml version="1.0" encoding="utf-8"?>
<service_requests><request><service_request_id>638344</service_request_id><token>12345</token></request>
</service_requests>"""

REQUESTS_JSON = """[{"service_request_id":638344,"status":"closed","status_notes":"Duplicate request.",
"service_name":"Sidewalk and Curb Issues","service_code":"006","description":null,"agency_responsible":null,
"service_notice":null,"requested_datetime":"2010-04-14T06:37:38-08:00",
"updated_datetime":"2010-04-14T06:37:38-08:00","expected_datetime":"2010-04-22T06:37:38-08:00",
"address":"8TH AVE and JUDAH ST","address_id":545483,"zipcode":94122,"lat":37.762221815198,
"long":-122.4651145557,"media_url":"http://city.gov.s3.amazonaws.com/requests/media/638344.jpg"}]"""

REQUESTS_XML = """<?xml version="1.0" encoding="utf-8"?>
<service_requests><request><service_request_id>638344</service_request_id><status>closed</status>
<status_notes>Duplicate request.</status_notes><service_name>Sidewalk and Curb Issues</service_name>
<service_code>006</service_code><description></description><agency_responsible></agency_responsible>
<service_notice></service_notice><requested_datetime>2010-04-14T06:37:38-08:00</requested_datetime>
<updated_datetime>2010-04-14T06:37:38-08:00</updated_datetime>
<expected_datetime>2010-04-22T06:37:38-08:00</expected_datetime><address>8TH AVE and JUDAH ST</address>
<address_id>545483</address_id><zipcode>94122</zipcode><lat>37.762221815198</lat><long>-122.4651145557</long>
<media_url>http://city.gov.s3.amazonaws.com/requests/media/638344.jpg</media_url></request></service_requests>"""

ERROR_JSON = (
    """[{"code":403,"description":"Invalid api_key received -- can't proceed with create_request."}]"""
)

ERROR_XML = """<?xml version="1.0" encoding="utf-8"?>
<errors><error><code>403</code><description>Invalid api_key received.</description></error></errors>"""
