"""
Where alerts go: one module per L{suto_server.audit.interfaces.IAlertSink}.
"""
