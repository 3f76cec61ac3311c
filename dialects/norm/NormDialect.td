//===- NormDialect.td - The norm dialect: normalisation layers -*- tablegen -*-===//

#ifndef M2C_DIALECTS_NORM_NORMDIALECT_TD
#define M2C_DIALECTS_NORM_NORMDIALECT_TD

include "mlir/IR/OpBase.td"

def Norm_Dialect : Dialect {
  let name = "norm";
  let cppNamespace = "::m2c::norm";
  let summary = "Normalisation layers of MiniMax-M2-family models";
  let description = [{
    The `norm` dialect holds the model's normalisation layers at tensor
    level. Statistics are always computed in fp32, whatever the storage type
    of the input.
  }];
}

class Norm_Op<string mnemonic, list<Trait> traits = []>
    : Op<Norm_Dialect, mnemonic, traits>;

#endif // M2C_DIALECTS_NORM_NORMDIALECT_TD
