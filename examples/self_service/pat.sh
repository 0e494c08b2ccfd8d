#!/usr/bin/env bash
# Create, list, use and revoke your own API token over HTTP, with curl, the way
# Atlassian's "Using Personal Access Tokens" page uses Jira's and Confluence's
# REST API (https://confluence.atlassian.com/enterprise/using-personal-access-tokens-1026032365.html):
# the same calls work against a Jira or Confluence Data Center and against a
# service behind restauth-wsgi with RESTAUTH_SELF_SERVICE=true.
#
#   BASE_URL=https://api.example.com AUTH="Bearer $PROVIDER_TOKEN" ./pat.sh
#   BASE_URL=https://api.example.com AUTH="Basic $(printf %s jenkins:PASSWORD | base64)" ./pat.sh
#
# AUTH is how you sign in to create the token: your identity provider's access
# token, or a password where the service has them. Needs curl and jq.
set -euo pipefail
base=${BASE_URL:?set BASE_URL to the service, e.g. https://api.example.com}
auth=${AUTH:?set AUTH to an Authorization header value, e.g. "Bearer <token>"}
api="$base/rest/pat/latest/tokens"

# Create a token that expires in 90 days. rawToken is shown this once: keep it.
created=$(curl --silent --show-error --fail-with-body \
  -H "Authorization: $auth" \
  -H "Content-Type: application/json" \
  -d '{"name": "ci-deploy", "expirationDuration": 90}' \
  "$api")
id=$(jq -r .id <<<"$created")
pat=$(jq -r .rawToken <<<"$created")
echo "created token $id, expiring at $(jq -r .expiringAt <<<"$created")"

# Your tokens: never their secrets.
curl --silent --show-error --fail-with-body -H "Authorization: $auth" "$api" \
  | jq -r '.[] | "listed \(.id) \(.name) expiring \(.expiringAt) last used \(.lastAccessedAt)"'

# Use the new token as a Bearer token, as with a Jira or Confluence PAT.
status=$(curl --silent --output /dev/null --write-out '%{http_code}' \
  -H "Authorization: Bearer $pat" "$base/rest/api/2/myself")
echo "with the token: $status"

# Revoke it (204): it is refused from then on.
curl --silent --show-error --fail-with-body -X DELETE -H "Authorization: $auth" "$api/$id"
echo "revoked token $id"
