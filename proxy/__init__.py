"""The service proxy: Services and EndpointSlices to one nftables table (see docs/proxy.md); proxy/dns
holds the cluster DNS server."""
