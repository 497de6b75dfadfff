"""
Storage back ends behind L{suto_server.interfaces.IUserStore} and
L{suto_server.interfaces.IEnrollmentStore}.
"""
