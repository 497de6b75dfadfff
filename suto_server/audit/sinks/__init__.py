"""
Where alerts go: one module per L{suto_server.interfaces.IAlertSink}.
"""
