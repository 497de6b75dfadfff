"""
The verification API: a TLS listener taking client certificates, whose
roles (L{suto_server.cred.roles}) say who may ask for a verdict
(C{POST /v1/verify}) and who may use the admin API over the network.
"""
