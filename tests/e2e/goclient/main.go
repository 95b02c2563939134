// A Go client of the gateway, built from the generated stubs in gen/go (the Go module
// `llmgw`, gen/go/llmgw/go.mod): it lists the models, asks for a completion, streams
// one, and asks for a model that does not exist to read the refusal's status details
// (the google.rpc.ErrorInfo reason), through Envoy's public listener, and prints what
// it got as one JSON object.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	routerv1 "llmgw/router/v1"
)

func fail(step string, err error) {
	fmt.Fprintf(os.Stderr, "%s: %v\n", step, err)
	os.Exit(1)
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: goclient HOST:PORT MODEL")
		os.Exit(2)
	}
	conn, err := grpc.Dial(os.Args[1], grpc.WithInsecure(), grpc.WithBlock(), grpc.WithTimeout(10*time.Second))
	if err != nil {
		fail("dial", err)
	}
	defer conn.Close()
	client := routerv1.NewRouterServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	models, err := client.ListModels(ctx, &routerv1.ListModelsRequest{})
	if err != nil {
		fail("ListModels", err)
	}
	request := &routerv1.CreateChatCompletionRequest{
		Model: os.Args[2],
		Messages: []*routerv1.ChatMessage{
			{Role: "user", Content: structpb.NewStringValue("Hello from Go")},
		},
	}
	reply, err := client.CreateChatCompletion(ctx, request)
	if err != nil {
		fail("CreateChatCompletion", err)
	}
	stream, err := client.StreamChatCompletion(ctx, request)
	if err != nil {
		fail("StreamChatCompletion", err)
	}
	text, chunks := "", 0
	for {
		chunk, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			fail("stream", err)
		}
		chunks++
		for _, choice := range chunk.GetChoices() {
			text += choice.GetDelta().GetContent()
		}
	}
	// A refusal carries a google.rpc.Status with typed details; ErrorInfo says why.
	missing := &routerv1.CreateChatCompletionRequest{Model: "no-such-model", Messages: request.Messages}
	_, err = client.CreateChatCompletion(ctx, missing)
	refused, _ := status.FromError(err)
	reason := ""
	for _, detail := range refused.Details() {
		if info, ok := detail.(*errdetails.ErrorInfo); ok {
			reason = info.GetReason()
		}
	}
	ids := []string{}
	for _, model := range models.GetData() {
		ids = append(ids, model.GetId())
	}
	out := map[string]interface{}{
		"models":         ids,
		"unary":          reply.GetChoices()[0].GetMessage().GetContent(),
		"finish_reason":  reply.GetChoices()[0].GetFinishReason(),
		"stream":         text,
		"chunks":         chunks,
		"refused_code":   refused.Code().String(),
		"refused_reason": reason,
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fail("encode", err)
	}
}
