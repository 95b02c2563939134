// A Go client of the gateway, built from the generated stubs in gen/go: it lists the
// models, asks for a completion and streams one, through Envoy's public listener, and
// prints what it got as one JSON object.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"google.golang.org/grpc"
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
	ids := []string{}
	for _, model := range models.GetData() {
		ids = append(ids, model.GetId())
	}
	out := map[string]interface{}{
		"models":        ids,
		"unary":         reply.GetChoices()[0].GetMessage().GetContent(),
		"finish_reason": reply.GetChoices()[0].GetFinishReason(),
		"stream":        text,
		"chunks":        chunks,
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fail("encode", err)
	}
}
