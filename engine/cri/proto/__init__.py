"""Generated CRI v1 (``runtime.v1``) gRPC stubs (api_pb2, api_pb2_grpc) from api.proto; see regen.sh."""
