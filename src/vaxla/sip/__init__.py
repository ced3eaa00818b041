"""Sans-IO SIP core: messages, URIs, SDP, digest auth, transactions, dialogs."""
