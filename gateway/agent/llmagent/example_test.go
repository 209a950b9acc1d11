package llmagent_test

import (
	"fmt"

	"github.com/earshot/earshot/gateway/agent/llmagent"
)

// New as a gateway's Config.NewAgent calls it: the gateway gives its base URL and a
// fresh API key; the model server and model name come from the operator.
func ExampleNew() {
	newAgent := func(baseURL, apiKey string) (*llmagent.Agent, error) {
		return llmagent.New(llmagent.Config{
			BaseURL:    baseURL,
			APIKey:     apiKey,
			LLMBaseURL: "http://127.0.0.1:8000/v1", // llama.cpp, vLLM, Ollama: OpenAI-compatible
			Model:      "qwen2.5-7b-instruct",
		})
	}
	a, err := newAgent("http://127.0.0.1:8080", "esk_example")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(a.ID())
	// Output: llmagent
}
