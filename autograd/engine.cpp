// How backward works, in four steps (docs/autograd.md tells the longer story):
//  1. Walk the graph from the roots and count, for every node, how many edges point at it.
//  2. Put the roots' gradients into their nodes' input buffers; nodes with no pending producers
//     are ready.
//  3. Pop a ready node, call its backward on its summed buffer, add each result into the buffer of
//     the node its edge points to, and decrement that node's count; at zero it becomes ready.
//     This runs each node exactly once, after every gradient for it has arrived.
//  4. Leaves are AccumulateGrad nodes: they add into .grad(). Unless retain_graph, each node frees
//     its saved tensors right after running.
#include "autograd/engine.h"

#include <iostream>
#include <unordered_map>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "autograd/record.h"
#include "core/profile.h"

namespace ctxpool::autograd {

namespace {

struct Capture {  // for grad(): where the gradient of inputs[i] shows up
  Node* node;
  uint32_t slot;
};

// A gradient must match what it is the gradient of. The error names where it came from: the backward
// of an op (`producer`, for its input `producer_input`), which is where the mistake is, or a root.
void check_grad_matches(const Tensor& g, const OutputMeta& meta, const Node& node, uint32_t slot,
                        const Node* producer, size_t producer_input) {
  if (g.sizes() == meta.sizes && g.dtype() == meta.dtype && g.device() == meta.device) return;
  const std::string from = producer ? detail::str_cat("'", producer->name(), "' returned a gradient for its input ",
                                                      producer_input)
                                    : std::string("the gradient given for a root");
  detail::fail("backward: ", from, " of ", g.sizes(), " ", g.dtype(), " on ", g.device(), ", but that input is ",
               meta.sizes, " ", meta.dtype, " on ", meta.device, " (it flows into output ", slot, " of '", node.name(),
               "')");
}

std::vector<Tensor> run(const std::vector<Tensor>& roots, const std::vector<Tensor>& grad_roots,
                        bool retain_graph, bool create_graph, const std::vector<Capture>* captures,
                        bool accumulate_into_leaves) {
  CTXPOOL_CHECK(grad_roots.empty() || grad_roots.size() == roots.size(), "backward: got ",
                roots.size(), " roots but ", grad_roots.size(), " gradients");
  AutoGradMode mode(create_graph);
  const profile::PhaseScope phase(profile::Phase::Backward);  // for CTXPOOL_PROFILE

  // Root edges and their gradients.
  std::vector<Edge> root_edges;
  std::vector<Tensor> root_grads;
  for (size_t i = 0; i < roots.size(); ++i) {
    const Tensor& r = roots[i];
    CTXPOOL_CHECK(r.defined() && r.requires_grad(), "backward: root ", i, " (shape ",
                  r.defined() ? shape_str(r.sizes()) : "undefined",
                  ") does not require grad and has no grad_fn; did you compute it under "
                  "NoGradGuard, or from tensors without requires_grad?");
    Tensor g = i < grad_roots.size() ? grad_roots[i] : Tensor();
    if (!g.defined()) {
      CTXPOOL_CHECK(r.numel() == 1, "backward: a gradient can be implied only for a one-element "
                    "output, but root ", i, " has shape ", r.sizes(), "; pass grad explicitly");
      g = ones(r.sizes(), TensorOptions(r.dtype()).device(r.device()));
    }
    CTXPOOL_CHECK(g.sizes() == r.sizes() && g.dtype() == r.dtype(), "backward: gradient ",
                  g.sizes(), " ", g.dtype(), " does not match root ", i, " ", r.sizes(), " ",
                  r.dtype());
    root_edges.push_back(gradient_edge(r));
    root_grads.push_back(g);
  }

  // 1. Dependency counts, by an explicit-stack walk.
  std::unordered_map<Node*, int> dependencies;
  {
    std::vector<Node*> stack;
    std::unordered_map<Node*, bool> seen;
    for (const Edge& e : root_edges)
      if (!seen[e.node.get()]) { seen[e.node.get()] = true; stack.push_back(e.node.get()); }
    while (!stack.empty()) {
      Node* n = stack.back();
      stack.pop_back();
      for (const Edge& e : n->next_edges()) {
        if (!e.valid()) continue;
        dependencies[e.node.get()]++;
        if (!seen[e.node.get()]) { seen[e.node.get()] = true; stack.push_back(e.node.get()); }
      }
    }
  }

  // 2. Input buffers, seeded with the roots' gradients.
  std::unordered_map<Node*, std::vector<Tensor>> buffers;
  auto accumulate = [&](Node* node, uint32_t slot, const Tensor& g, const Node* producer, size_t producer_input) {
    check_grad_matches(g, node->output_meta(slot), *node, slot, producer, producer_input);
    auto& buf = buffers[node];
    if (buf.empty()) buf.resize(node->num_outputs());
    buf[slot] = buf[slot].defined() ? buf[slot].add(g) : g;
  };
  std::unordered_map<Node*, std::shared_ptr<Node>> keep_alive;
  std::vector<Node*> ready;
  for (size_t i = 0; i < root_edges.size(); ++i) {
    Node* n = root_edges[i].node.get();
    accumulate(n, root_edges[i].input_nr, root_grads[i], nullptr, i);
    if (!keep_alive.count(n)) {
      keep_alive[n] = root_edges[i].node;
      if (dependencies[n] == 0) ready.push_back(n);
    }
  }

  std::vector<Tensor> captured(captures ? captures->size() : 0);
  // 3. Run nodes in dependency order.
  while (!ready.empty()) {
    Node* node = ready.back();
    ready.pop_back();
    std::vector<Tensor> grads_in = std::move(buffers[node]);
    buffers.erase(node);
    bool has_grad = false;
    for (const Tensor& g : grads_in) has_grad = has_grad || g.defined();

    if (captures) {
      for (size_t i = 0; i < captures->size(); ++i)
        if ((*captures)[i].node == node && (*captures)[i].slot < grads_in.size())
          captured[i] = grads_in[(*captures)[i].slot];
    }

    std::vector<Tensor> grads_out;
    const bool is_leaf_sink = dynamic_cast<AccumulateGrad*>(node) != nullptr;
    if (has_grad && (!is_leaf_sink || accumulate_into_leaves)) {
      // Outputs that received no gradient count as zeros.
      for (size_t i = 0; i < grads_in.size(); ++i) {
        if (!grads_in[i].defined()) {
          const OutputMeta& m = node->output_meta(i);
          grads_in[i] = zeros(m.sizes, TensorOptions(m.dtype).device(m.device));
        }
      }
      if (debug_level() >= 2) std::cerr << "[ctxpool] backward " << node->name() << '\n';
      {
        const profile::Timer timer(profile::Table::BackwardNodes, node->name().c_str());
        grads_out = node->apply(std::move(grads_in));
      }
      if (!retain_graph) node->release_variables();
      CTXPOOL_CHECK(grads_out.size() == node->next_edges().size() || is_leaf_sink, "backward: '",
                    node->name(), "' returned ", grads_out.size(), " gradients for ",
                    node->next_edges().size(), " inputs");
    }

    const auto& edges = node->next_edges();
    for (size_t i = 0; i < edges.size(); ++i) {
      const Edge& e = edges[i];
      if (!e.valid()) continue;
      Node* next = e.node.get();
      if (i < grads_out.size() && grads_out[i].defined()) accumulate(next, e.input_nr, grads_out[i], node, i);
      if (!keep_alive.count(next)) keep_alive[next] = e.node;
      if (--dependencies[next] == 0) ready.push_back(next);
    }
  }
  return captured;
}

}  // namespace

void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grad_roots,
              bool retain_graph, bool create_graph) {
  run(roots, grad_roots, retain_graph || create_graph, create_graph, nullptr, true);
}

std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs, bool retain_graph,
                         bool create_graph, bool allow_unused) {
  std::vector<Capture> captures;
  std::vector<std::shared_ptr<Node>> hold;  // keeps leaf accumulators alive during the run
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& t = inputs[i];
    CTXPOOL_CHECK(t.defined() && t.requires_grad(), "autograd::grad: input ", i,
                  " does not require grad");
    Edge e = gradient_edge(t);
    hold.push_back(e.node);
    captures.push_back(Capture{e.node.get(), e.input_nr});
  }
  std::vector<Tensor> result =
      run(outputs, grad_outputs, retain_graph || create_graph, create_graph, &captures, false);
  for (size_t i = 0; i < result.size(); ++i) {
    CTXPOOL_CHECK(allow_unused || result[i].defined(), "autograd::grad: input ", i, " (shape ",
                  inputs[i].sizes(), ") was not used to compute the outputs; pass "
                  "allow_unused=true if that is expected");
  }
  return result;
}

}  // namespace ctxpool::autograd

namespace ctxpool {
void Tensor::backward(const Tensor& grad, bool retain_graph, bool create_graph) const {
  autograd::backward({*this}, {grad}, retain_graph, create_graph);
}
}  // namespace ctxpool
