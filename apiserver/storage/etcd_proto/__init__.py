"""Generated etcd v3 gRPC stubs (rpc_pb2, rpc_pb2_grpc) from rpc.proto; see regen.sh."""
