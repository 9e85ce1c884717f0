// Error catalog of the AWS app (npm run cdk): bad command lines and construct properties that CDK
// itself would accept but AWS would refuse at deploy time.
import { defineErrors } from '@city/protocol';

export const cdkErrors = defineErrors('CDK', {
  CDK_USAGE: { message: 'invalid command line', canRetry: false, usage: true, action: 'see npm run cdk -- --help' },
  CDK_INVALID_PROPS: { message: 'invalid AWS app properties', canRetry: false, usage: true, action: 'fix the property or --context value the message names' },
});

export type CdkErrorCode = (typeof cdkErrors.codes)[number];
