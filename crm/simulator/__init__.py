"""A NetServer (SuperOffice SOAP) simulator: the hub's one CRM double, over real HTTP.

It stands apart from the client it checks: nothing else in ``crm`` imports it. Its
sign-in comes from ``settings.NETSERVER_SIMULATOR`` when started as a command.
"""
