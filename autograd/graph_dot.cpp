#include "autograd/graph_dot.h"

#include <sstream>
#include <unordered_map>
#include <vector>

#include "autograd/node.h"

namespace ctxpool::autograd {

std::string to_dot(const Tensor& t) {
  std::ostringstream os;
  os << "digraph autograd {\n  rankdir=BT;\n  node [fontname=\"Helvetica\", fontsize=10];\n";
  os << "  root [shape=box, style=filled, fillcolor=lightblue, label=\"output\\n"
     << shape_str(t.sizes()) << "\"];\n";
  if (!t.grad_fn() && !t.requires_grad()) return os.str() + "}\n";

  Edge root = gradient_edge(t);
  std::unordered_map<const Node*, int> ids;
  std::vector<const Node*> stack{root.node.get()};
  ids[root.node.get()] = 0;
  os << "  n0 -> root;\n";
  while (!stack.empty()) {
    const Node* n = stack.back();
    stack.pop_back();
    const int id = ids[n];
    if (auto* acc = dynamic_cast<const AccumulateGrad*>(n)) {
      const auto leaf = acc->leaf();
      const std::string name = leaf && !leaf->name.empty() ? leaf->name : "leaf";
      os << "  n" << id << " [shape=box, style=filled, fillcolor=lightgrey, label=\"" << name
         << "\\n" << (leaf ? shape_str(leaf->sizes) : "freed") << "\"];\n";
    } else {
      os << "  n" << id << " [shape=ellipse, label=\"" << n->name() << "\"];\n";
    }
    for (const Edge& e : n->next_edges()) {
      if (!e.valid()) continue;
      auto [it, inserted] = ids.try_emplace(e.node.get(), static_cast<int>(ids.size()));
      if (inserted) stack.push_back(e.node.get());
      os << "  n" << it->second << " -> n" << id << ";\n";
    }
  }
  os << "}\n";
  return os.str();
}

}  // namespace ctxpool::autograd
