# Seed 002 (the client-credentials example), "Using ClientCredentialsAuthorizer", verbatim.
import globus_sdk

# you must have a client ID
CLIENT_ID = '...'
# the secret, loaded from wherever you store it
CLIENT_SECRET = '...'

confidential_client = globus_sdk.ConfidentialAppAuthClient(
    client_id=CLIENT_ID, client_secret=CLIENT_SECRET)

scopes = "urn:globus:auth:scope:transfer.api.globus.org:all"
cc_authorizer = globus_sdk.ClientCredentialsAuthorizer(
    confidential_client, scopes)

# create a new client
transfer_client = globus_sdk.TransferClient(authorizer=cc_authorizer)

# Left out until Isthmus has Transfer: the listing, which calls Transfer (the
# seed names the client `tc` there, a slip for `transfer_client`):
#   print("Endpoints Belonging to {}@clients.auth.globus.org:"
#         .format(CLIENT_ID))
#   for ep in tc.endpoint_search(filter_scope="my-endpoints"):
#       print("[{}] {}".format(ep["id"], ep["display_name"]))
