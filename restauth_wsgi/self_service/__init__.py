"""Self-service API tokens: an Atlassian-compatible personal access token API.

Users create, list and revoke their own API tokens over HTTP, with the
request and answer shapes of Jira and Confluence Data Center
(``POST``/``GET`` ``/rest/pat/latest/tokens``, ``DELETE …/{id}``), so scripts
written for those work unchanged. The middleware serves it after its usual
decision has authenticated the caller; the application never sees these
requests. Off unless ``RESTAUTH_SELF_SERVICE=true``; see docs/self-service.md.

* :mod:`.api`: the endpoint, from a request to an answer;
* :mod:`.body`: the JSON body of a creation, read strictly;
* :mod:`.grants`: what a new token may be given, never more than its creator has;
* :mod:`.wire`: tokens and times in Atlassian's field names and format;
* :mod:`.cors`: browser preflights, for the listed origins only;
* :mod:`.refusals`: the API's own refusals (400, 404, 405, 413, 415).

Its settings, and the checks of their values, are
:class:`restauth_wsgi.settings.SelfServiceSettings`.
"""
