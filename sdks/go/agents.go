package coexai

import (
	"context"
	"net/url"
)

// Agent is an agent the service runs (the OpenAPI schema AgentSummary).
type Agent struct {
	ID                string   `json:"id"`
	Name              string   `json:"name"`
	Description       string   `json:"description"`
	AcceptedFileTypes []string `json:"accepted_file_types"`
	MaxFileBytes      int64    `json:"max_file_bytes"`
	// OutputFormats are the formats Jobs.GetOutput can ask this agent's outputs in ("json" first).
	OutputFormats []string `json:"output_formats"`
	// Status is "available" or "maintenance" (then MaintenanceReason says why).
	Status            string  `json:"status"`
	MaintenanceReason *string `json:"maintenance_reason"`
}

// AgentConfig is an agent with what its jobs take (the OpenAPI schema AgentConfig): the JSON Schemas of
// its input_data and config, and its limits.
type AgentConfig struct {
	Agent
	InputSchema      map[string]interface{} `json:"input_schema"`
	ConfigSchema     map[string]interface{} `json:"config_schema"`
	MaxFiles         int                    `json:"max_files"`
	TimeLimitSeconds float64                `json:"time_limit_seconds"`
}

// AgentsService is the /v1/agents part of the API (Client.Agents).
type AgentsService struct {
	client *Client
}

// List returns every agent (GET /v1/agents).
func (s *AgentsService) List(ctx context.Context) ([]Agent, error) {
	var agents []Agent
	if err := s.client.do(ctx, "GET", "/agents", nil, nil, &agents, 0); err != nil {
		return nil, err
	}
	return agents, nil
}

// Config returns an agent and what its jobs take (GET /v1/agents/{id}/config); an unknown agent is a
// 404 *Error.
func (s *AgentsService) Config(ctx context.Context, id string) (*AgentConfig, error) {
	var config AgentConfig
	if err := s.client.do(ctx, "GET", "/agents/"+url.PathEscape(id)+"/config", nil, nil, &config, 0); err != nil {
		return nil, err
	}
	return &config, nil
}

// Get returns one agent. The API has no route for one agent's summary: this reads its configuration
// (Config) and returns the agent part of it.
func (s *AgentsService) Get(ctx context.Context, id string) (*Agent, error) {
	config, err := s.Config(ctx, id)
	if err != nil {
		return nil, err
	}
	return &config.Agent, nil
}
