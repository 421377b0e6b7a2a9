"""The stand-ins and service harnesses of the test suite (and of bench/), in one place; nothing
under fmn/ imports them.

- services: a PostgreSQL database, a Redis database and a RabbitMQ vhost per pytest-xdist worker
- directory_server (+ directory_fasjson, directory_pagure): FASJSON's and Pagure's HTTP APIs
  answered from a directory file, with a fault switch
- oidc (+ oidc_provider/): node's oidc-provider, issuing real tokens
- smtp_server, irc_server, matrix_server: a real SMTP server, InspIRCd + Atheme, Synapse
- ports: free ports for them
"""
